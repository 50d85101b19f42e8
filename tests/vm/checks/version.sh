v=$(runway --version 2>&1 | head -n 1)
case $v in
"runway version "*) pass version "$v" ;;
*) fail version "$v" ;;
esac
