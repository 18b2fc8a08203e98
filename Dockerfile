# syntax=docker/dockerfile:1
# One image for the worker and the simulator: `llm-streams worker`, `llm-sim`.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY llm_sim ./llm_sim
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN groupadd --gid 10001 app && useradd --create-home --uid 10001 --gid 10001 app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LLM_SERVICE_HOST=0.0.0.0 \
    LLM_DATA_DIR=/home/app/data
# Numeric, so that a runtime enforcing runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /home/app
EXPOSE 6066
ENTRYPOINT ["llm-streams"]
CMD ["worker"]
