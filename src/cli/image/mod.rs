//! `runway image …`: docker's image management commands, one file each.
