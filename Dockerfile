# berth as a container: mount the Docker socket (or give it remote hosts in the config) and a
# config file. berth runs from its bundle (dist/berth.mjs, made in the first stage by esbuild from
# src/ and the packages it imports; docs/config.md, "Memory").
# bin/berth.js re-executes itself on a Node with small-heap flags (docs/config.md, "Memory":
# -e BERTH_NODE_FLAGS=... to change them).
#   docker build -t berth .
#   docker run -d -v /var/run/docker.sock:/var/run/docker.sock -v berth-data:/data \
#     -v ./berth.config.yaml:/etc/berth/berth.config.yaml:ro -p 8080:8080 berth
FROM node:24-bookworm-slim AS build
WORKDIR /opt/berth
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY bin ./bin
COPY src ./src
COPY scripts ./scripts
RUN node scripts/build.ts

FROM node:24-bookworm-slim
WORKDIR /opt/berth
COPY package.json package-lock.json ./
# what the bundle leaves out and loads when used (pino, ssh2, dockerode's BuildKit session)
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY scripts/build.ts ./scripts/
COPY examples ./examples
COPY --from=build /opt/berth/dist ./dist
# The bundle is newer than the sources it was made from (COPY keeps their times), so berth runs it;
# Node's compile cache, filled here, spares each start compiling it again.
ENV NODE_COMPILE_CACHE=/opt/berth/.compile-cache
RUN NODE_DEBUG_NATIVE=COMPILE_CACHE node bin/berth.js --help 2>&1 >/dev/null | grep -q 'dist/berth.mjs'
ENV BERTH_CONFIG=/etc/berth/berth.config.yaml
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["node", "/opt/berth/bin/berth.js"]
CMD ["serve"]
