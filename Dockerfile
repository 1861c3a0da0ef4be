# forseti agent: production image. Build: docker build -t forseti .
# Run with host networking on the provisioning network (DHCP needs broadcasts):
#   docker run --net=host -v forseti-state:/var/lib/forseti -v /etc/forseti:/etc/forseti:ro forseti agent --config /etc/forseti/agent.yaml

# Build stage: the native addons (the TFTP engine in src/serve/tftp/native/, HTTP sendfile in
# src/serve/http/native/) need a C toolchain; the runtime image does not. N-API keeps the addon valid across Node versions.
FROM node:22-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# Node's own headers, instead of a download from nodejs.org
ENV npm_config_nodedir=/usr/local
WORKDIR /opt/forseti
COPY package.json package-lock.json binding.gyp ./
COPY scripts/build-native.mjs ./scripts/
COPY src/serve/tftp/native ./src/serve/tftp/native
COPY src/serve/http/native ./src/serve/http/native
RUN npm ci --omit=dev && test -f build/Release/tftp_engine.node && test -f build/Release/http_sendfile.node

FROM node:22-bookworm-slim

RUN apt-get update \
 && apt-get install -y --no-install-recommends ipmitool ipxe libcap2-bin ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 # bind DHCP (67) and TFTP (69) without running as root
 && setcap cap_net_bind_service,cap_net_raw=+ep "$(readlink -f "$(command -v node)")"

WORKDIR /opt/forseti
COPY package.json package-lock.json ./
COPY --from=build /opt/forseti/node_modules ./node_modules
COPY --from=build /opt/forseti/build/Release/tftp_engine.node /opt/forseti/build/Release/http_sendfile.node ./build/Release/
COPY bin ./bin
COPY src ./src
COPY schemas ./schemas

RUN useradd --system --home-dir /var/lib/forseti --create-home forseti \
 && mkdir -p /var/lib/forseti && chown forseti:forseti /var/lib/forseti
USER forseti
VOLUME ["/var/lib/forseti"]
EXPOSE 67/udp 69/udp 8080/tcp

ENTRYPOINT ["node", "/opt/forseti/bin/forseti.js"]
CMD ["agent", "--config", "/etc/forseti/agent.yaml"]
