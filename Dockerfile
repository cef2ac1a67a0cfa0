# clusterdns images, one file: `docker build .` (DNS server, the default target), `docker build --target vip .`
# and `docker build --target nodecache .`.
# NODE_VERSION is the production line (.node-version; README "Runtime").
ARG NODE_VERSION=26.12.1

FROM node:${NODE_VERSION}-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The same build `npm pack` ships (src/ only, no source maps), then only the runtime dependencies.
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:${NODE_VERSION}-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY LICENSE ./

# VIP programmer: needs iptables (nft and legacy backends), nft and conntrack; runs as root with
# NET_ADMIN in the host network namespace (deploy/vip-daemonset.yaml). The V8 flag comes from the
# same-pid re-exec in src/runtime.ts.
FROM runtime AS vip
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables nftables conntrack \
 && rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["node", "/app/dist/src/cli.js", "vip"]

# Node-local DNS cache: the DNS server plus the vip stage's tools and iproute2 for its interface; root with
# NET_ADMIN in the host network namespace (deploy/nodelocaldns.yaml).
FROM vip AS nodecache
RUN apt-get update \
 && apt-get install -y --no-install-recommends iproute2 \
 && rm -rf /var/lib/apt/lists/*
EXPOSE 53/udp 53/tcp 9253 8080
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/src/cli.js", "nodecache"]

# DNS server (last stage = default target). Non-root; binding :53 takes NET_BIND_SERVICE or the
# net.ipv4.ip_unprivileged_port_start sysctl (deploy/deployment.yaml sets both, like CoreDNS's manifest).
FROM runtime AS dns
USER 1000:1000
EXPOSE 53/udp 53/tcp 9153 8080 8181
# The V8 flag given here spares the re-exec of src/runtime.ts.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/src/cli.js"]
CMD ["-conf", "/etc/coredns/Corefile"]
