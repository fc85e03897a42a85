# MediaFlow API and worker image. The static ffmpeg comes from the imageio-ffmpeg wheel, so the image
# needs no system ffmpeg.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN pip install --no-deps . && useradd --create-home mediaflow && mkdir -p /app/data /app/media && chown -R mediaflow /app/data /app/media
USER mediaflow
EXPOSE 8000
CMD ["uvicorn", "main:app", "--host", "0.0.0.0", "--port", "8000"]
