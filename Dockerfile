# clusterdns images: `docker build .` (DNS server, default) and `docker build --target vip .`.
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# `prepare` compiles; the sources are not there yet.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY zones ./zones
# tsconfig also includes bench/ and test/; only src/ is needed at runtime.
RUN npx tsc -p . --outDir dist && npm prune --omit=dev --ignore-scripts

FROM node:20-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=build /src/zones ./zones

# VIP programmer: needs iptables (nft and legacy backends), nft and conntrack; runs as root with
# NET_ADMIN in the host network namespace (deploy/vip-daemonset.yaml).
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
# Same node flag as the bin shebang: see src/cli.ts.
ENTRYPOINT ["node", "--max-semi-space-size=2", "/app/dist/src/cli.js"]
CMD ["-conf", "/etc/coredns/Corefile"]
