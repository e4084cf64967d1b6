# The test OpenID Provider (tests/idp/provider: oidc-provider, pinned by package-lock.json)
# for the kind suite. Build context: tests/idp/provider.
FROM docker.io/library/node:22-alpine
WORKDIR /app
COPY package.json package-lock.json provider.mjs ./
RUN npm ci --omit=dev --no-audit --no-fund
USER node
ENTRYPOINT ["node", "provider.mjs"]
