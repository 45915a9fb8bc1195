FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
WORKDIR /app
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md constraints.txt ./
COPY kit kit
COPY commerce commerce
COPY nlu nlu
COPY knowledge_base knowledge_base
COPY bot bot
COPY api api
COPY alembic.ini ./
RUN pip install --no-cache-dir -c constraints.txt .
EXPOSE 8000
CMD ["shoptalk", "serve", "--host", "0.0.0.0", "--port", "8000"]
