# The dotfleet GitHub App. Build: docker build -t dotfleet .   Run: see compose.yaml and docs/operations.md.
# Stage 1 builds and packs exactly what npm publishes; stage 2 installs that tarball's
# production dependencies from the lock file and runs as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json app.yml LICENSE README.md ./
COPY scripts ./scripts
COPY src ./src
COPY examples ./examples
COPY templates ./templates
COPY docs ./docs
RUN npm run build && npm pack --ignore-scripts --pack-destination /tmp && mkdir /out && tar xzf /tmp/dotfleet-*.tgz -C /out

FROM node:20-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
WORKDIR /app
COPY --from=build /out/package/ ./
COPY --from=build /src/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force && chown -R root:root /app
USER node
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/dotfleet/v1/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The same command the test suite starts from the packed tarball (test/cli/package.test.ts).
CMD ["node", "dist/app/server.js"]
