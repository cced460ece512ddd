# The hosted demo (README: "Hosted deployment"). The demo's results are computed while the image is built, not on
# a visitor's clock; a named volume on /data starts as a copy of them.
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN python -m venv .venv && .venv/bin/pip install --no-cache-dir -e .
ENV CNNVIT_CACHE_DIR=/data
# trains the demo's four models on the same shapes images and evaluates them (4-12 minutes on 2 cores)
RUN .venv/bin/python -m core demo
ENV CNNVIT_HOSTED=1 CNNVIT_MAX_UPLOAD_MB=5 CNNVIT_HOSTED_MAX_EPOCHS=10
VOLUME /data
EXPOSE 8501
CMD [".venv/bin/streamlit", "run", "app.py", "--server.headless=true", "--server.address=0.0.0.0", \
     "--server.maxUploadSize=5", "--client.showErrorDetails=none", "--client.toolbarMode=viewer"]
