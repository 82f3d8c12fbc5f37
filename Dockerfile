# The SEC chain node (docs/operations.md, "Containers: the image and the compose network").
#
#   docker build -t sec-node .
#   docker run -v sec-node0:/home/sec/node -p 26600:26600 -p 8545:8545 sec-node
#
# The image runs `sec node start --home /home/sec/node` as the unprivileged user `sec`; the home
# (config.toml, node.key, genesis.json, data/) is a volume made beforehand with
# `sec genesis new` (the image creates nothing: a missing home is an error, not a new network).
# Any other `sec` command runs with `docker run ... sec-node COMMAND`.

# Build stage: the project and its pinned dependencies in a virtual environment. Every
# dependency installs from a manylinux wheel (plyvel's bundles libleveldb and libsnappy), so no
# compiler or -dev package is needed here either.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/sec
WORKDIR /src
COPY pyproject.toml README.md cli.py ./
COPY consensus ./consensus
COPY contracts ./contracts
COPY ledger ./ledger
COPY p2p ./p2p
COPY secnode ./secnode
# Then drop what only building needs (pip, setuptools, C headers, the libraries' own test
# suites): 55 MB of the 324 MB environment.
RUN /opt/sec/bin/pip install . \
    && /opt/sec/bin/python -m pip uninstall --yes pip setuptools \
    && site=/opt/sec/lib/python3.11/site-packages \
    && rm -rf "$site/pyarrow/include" "$site/pyarrow/src" "$site/pyarrow/tests" \
        "$site"/numpy/*/tests "$site/numpy/tests" \
    && /opt/sec/bin/python -c "import plyvel, nacl, numpy, pyarrow.parquet, secnode.export"

# Run stage: the environment only (no sources, no pip cache, no build tools).
FROM python:3.11-slim
COPY --from=build /opt/sec /opt/sec
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin sec \
    && mkdir /home/sec/node \
    && chown sec:sec /home/sec/node
ENV PATH=/opt/sec/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER sec
WORKDIR /home/sec
# P2P (peers) and JSON-RPC/WebSocket, /health, /metrics: the defaults of config.toml.
EXPOSE 26600 8545
VOLUME ["/home/sec/node"]
ENTRYPOINT ["sec"]
CMD ["node", "start", "--home", "/home/sec/node"]
