# syntax=docker/dockerfile:1
# mcp-gateway container image. Build: docker build -t ghcr.io/mcp-gateway/mcp-gateway:0.1.0 .
# test/docker-image.test.ts reproduces these steps without Docker; keep the two in step.
ARG NODE_IMAGE=node:24-slim

# Production dependencies only. --ignore-scripts: no dependency needs an install script, and
# none gets to run code at build time.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Compile TypeScript with the dev dependencies; only dist/ leaves this stage.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    HOME=/tmp
WORKDIR /app
# Files stay owned by root and read-only to the app: it runs with a read-only root filesystem
# and writes only to /tmp.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# uid/gid 1000 is the image's "node" user; numeric so runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080
# Node 20+ has fetch built in, so the check needs no curl or wget in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.js"]
