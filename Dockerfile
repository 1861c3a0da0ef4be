# forseti agent image: a thin wrapper over the release build, so what runs here is what `npm run build` and
# `npm run deb` make and test/release-*.test.ts check (no Docker engine runs in our CI).
#   docker build -t forseti .
#   docker run --net=host -v forseti-state:/var/lib/forseti -v /etc/forseti:/etc/forseti:ro forseti
# Host networking: DHCP needs the provisioning network's broadcasts.

# Build: node:20-bookworm carries python3, make and g++ for the native addons (the TFTP engine, HTTP sendfile;
# scripts/build-native.mjs, run by npm ci), and the Node binary the single executable is made from.
FROM node:20-bookworm AS build
WORKDIR /src
COPY . .
RUN npm ci && npm run build && npm run deb

# Run: the Debian package on plain Debian; nothing else but ipmitool (IPMI BMCs) and the iPXE binaries.
FROM debian:bookworm-slim
COPY --from=build /src/dist/forseti_*_amd64.deb /tmp/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/forseti_*_amd64.deb ipmitool ipxe ca-certificates libcap2-bin \
 # The unit's two capabilities, as file capabilities: DHCP (67) and TFTP (69) without root, SO_BINDTODEVICE.
 && setcap cap_net_bind_service,cap_net_raw=+ep /usr/bin/forseti \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* /tmp/forseti_*_amd64.deb
USER forseti
VOLUME ["/var/lib/forseti"]
EXPOSE 67/udp 69/udp 4011/udp 8080/tcp
ENTRYPOINT ["/usr/bin/forseti"]
CMD ["agent", "--config", "/etc/forseti/agent.yaml"]
