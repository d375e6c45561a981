# berth as a container: mount the Docker socket (or give it remote hosts in the config) and a
# config file. berth runs its TypeScript sources directly on Node 24 (type stripping).
# bin/berth.js re-executes itself on a Node with small-heap flags (docs/config.md, "Memory":
# -e BERTH_NODE_FLAGS=... to change them).
#   docker build -t berth .
#   docker run -d -v /var/run/docker.sock:/var/run/docker.sock -v berth-data:/data \
#     -v ./berth.config.yaml:/etc/berth/berth.config.yaml:ro -p 8080:8080 berth
FROM node:24-bookworm-slim
WORKDIR /opt/berth
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY examples ./examples
# Node's compile cache, filled here: berth starts without the type stripper (~17 MB less resident)
ENV NODE_COMPILE_CACHE=/opt/berth/.compile-cache
RUN node bin/berth.js --help > /dev/null
ENV BERTH_CONFIG=/etc/berth/berth.config.yaml
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["node", "/opt/berth/bin/berth.js"]
CMD ["serve"]
