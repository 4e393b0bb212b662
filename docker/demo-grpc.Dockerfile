# The demo gRPC model server (scripts/demo_grpc_model_server.py: the Open
# Inference Protocol over h2c) for docker/compose.yaml's demo-grpc profile:
# Debian's python3-grpcio, python3-grpc-tools and python3-protobuf (the
# packages scripts/deps.sh installs for it), the script and its .proto files.
# python3-pkg-resources too: Debian 12's grpc_tools.protoc imports
# pkg_resources without depending on it (a host has it from other packages).
#
#   docker build -f docker/demo-grpc.Dockerfile -t pqproxy-demo-grpc:local .   (from the repository root)
#
# The server compiles its .proto files into /tmp at start: with a read-only
# root file system, mount a tmpfs there (compose.yaml does).
ARG RUNTIME_IMAGE=debian:12-slim
FROM ${RUNTIME_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3-grpcio python3-grpc-tools python3-protobuf python3-pkg-resources \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/demo_grpc_model_server.py /app/demo_grpc_model_server.py
COPY scripts/proto/ /app/proto/
USER 65534:65534
ENTRYPOINT ["python3", "/app/demo_grpc_model_server.py"]
CMD ["--host", "127.0.0.1", "--port", "8500"]
