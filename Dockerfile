# One image for both services; docker-compose.yml picks the command.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY agentwatch agentwatch
COPY contract contract
COPY ingest ingest
COPY relay relay
COPY hooks hooks
COPY web web
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \
 && (cd web && npm ci --no-audit --no-fund --ignore-scripts) \
 && pip install --no-cache-dir -r requirements.lock . \
 && apt-get purge -y nodejs npm && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* /root/.npm
USER nobody
