#!/usr/bin/env python3
"""One Kubernetes CRI (v1) call, for the engine tests (tests/engines/cri.rs).

    cri_client.py SOCKET SERVICE METHOD [REQUEST_JSON]

SERVICE is RuntimeService or ImageService, METHOD a CRI method such as
RunPodSandbox; REQUEST_JSON is the request message in protobuf's JSON
mapping (field names as in api.proto). Prints the response the same way,
with every field (also zero ones), and ExecSync's stdout/stderr as text
rather than base64. Exits 1 with "METHOD: CODE: details" on stderr when
the call fails, 2 on bad usage.

The stubs come from PyPI's container-runtime-interface-api (module
cri_api.v1), the transport from grpcio; no crictl is needed.
"""

import json
import sys

import grpc
from google.protobuf import json_format

from cri_api.v1 import api_pb2, api_pb2_grpc


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__, file=sys.stderr)
        return 2
    sock, service, method = argv[1:4]
    request_json = argv[4] if len(argv) == 5 else "{}"
    stub_class = getattr(api_pb2_grpc, service + "Stub", None)
    request_class = getattr(api_pb2, method + "Request", None)
    if stub_class is None or request_class is None:
        print(f"unknown service or method: {service}.{method}", file=sys.stderr)
        return 2
    request = json_format.Parse(request_json, request_class())
    with grpc.insecure_channel("unix://" + sock) as channel:
        try:
            response = getattr(stub_class(channel), method)(request, timeout=60)
        except grpc.RpcError as e:
            print(f"{method}: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1
    out = json_format.MessageToDict(
        response,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
    )
    if isinstance(response, api_pb2.ExecSyncResponse):
        out["stdout"] = response.stdout.decode(errors="replace")
        out["stderr"] = response.stderr.decode(errors="replace")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
