# billplane as a container: `billplane serve` as a user without privileges, configured by its
# environment alone, migrating its database before it serves. README, "Container", says how to
# build and run it; tests/test_container.py builds and runs it on SQLite and on PostgreSQL.
#
#   docker build -t billplane .
#   docker run -e BILLPLANE_ADMIN_TOKEN=... -e DATABASE_URL=postgresql://... -p 8000:8000 billplane
#
# Only the classic builder's features are used, so it builds with BuildKit or without.

# Any Debian-like image with Python 3.11 or newer (`python3 -m venv` and `useradd`).
ARG BASE=python:3.11-slim

# billplane's dependencies, read from pyproject.toml, in a stage of their own: a change to
# billplane's code alone rebuilds billplane alone.
FROM ${BASE} AS dependencies
# Empty: the wheels come from the package index, at the versions constraints.txt pins. Or the name
# of a folder of the build context holding every wheel needed (billplane's dependencies and
# setuptools, from `pip download`): the image is then built from those alone, with no network.
ARG WHEELHOUSE=
RUN python3 -m venv /opt/billplane
# A wheelhouse's wheels land in /build beside the two files.
COPY pyproject.toml constraints.txt ${WHEELHOUSE} /build/
RUN /opt/billplane/bin/python -c "import tomllib; \
pyproject = tomllib.load(open('/build/pyproject.toml', 'rb')); \
open('/build/requirements.txt', 'w').write('\n'.join(pyproject['project']['dependencies'])); \
open('/build/build-requirements.txt', 'w').write('\n'.join(pyproject['build-system']['requires']))"
RUN if [ -n "$WHEELHOUSE" ]; then set -- --no-index --find-links /build; fi \
    && /opt/billplane/bin/pip install --no-cache-dir "$@" -c /build/constraints.txt \
        -r /build/requirements.txt

# billplane's wheel, built from this checkout; setuptools stays in this stage.
FROM dependencies AS wheel
ARG WHEELHOUSE=
RUN if [ -n "$WHEELHOUSE" ]; then set -- --no-index --find-links /build; fi \
    && /opt/billplane/bin/pip install --no-cache-dir "$@" -c /build/constraints.txt \
        -r /build/build-requirements.txt
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN /opt/billplane/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist \
    /src

FROM ${BASE}
# A fixed uid, so that an orchestrator can tell it is not root (runAsNonRoot) and a volume's
# owner stays the same from one image to the next.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/billplane --create-home \
    --shell /usr/sbin/nologin billplane
COPY --from=dependencies /opt/billplane /opt/billplane
COPY --from=wheel /dist /tmp/dist
RUN /opt/billplane/bin/pip install --no-cache-dir --no-index --no-deps /tmp/dist/*.whl \
    && rm -r /tmp/dist
# Unbuffered: the start's lines reach `docker logs` as they are written.
ENV PATH=/opt/billplane/bin:$PATH \
    PYTHONUNBUFFERED=1
USER 10001:10001
# The default DATABASE_URL (sqlite:///./billplane.db) lands here: keep it on a volume.
WORKDIR /var/lib/billplane
VOLUME /var/lib/billplane
EXPOSE 8000
# Ready means the database answers and is at the migrations' head: what /readyz tells. No proxy,
# whatever HTTP_PROXY says: the server is this container's own.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:%s/readyz' % os.environ.get('BILLPLANE_PORT', '8000'), timeout=4)"]
# `docker run IMAGE db upgrade` (or any other command) runs the CLI instead of the server.
ENTRYPOINT ["billplane"]
# --migrate: a database behind this image's migrations is brought to their head before serving
# (a PostgreSQL database in one transaction). Several replicas of one database: run
# `db upgrade` once per release, and serve without --migrate (README, "Container").
CMD ["serve", "--host", "0.0.0.0", "--migrate"]
