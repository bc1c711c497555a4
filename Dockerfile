# syntax=docker/dockerfile:1
#
# Two images from one file (docker-compose.yml builds both):
#
#   servers  MLflow, TensorBoard and optuna-dashboard with the PostgreSQL
#            driver: the same versions as the workers, without TensorFlow.
#   gdbench  the workers and the one-shot `create`: the servers' packages,
#            TensorFlow with CUDA and cuDNN from pip wheels (the host needs only
#            the NVIDIA driver and the NVIDIA Container Toolkit), gdbench and
#            the study specs.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS servers
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install \
        "mlflow[auth]==3.17.2" \
        "optuna==5.0.0" \
        "optuna-dashboard==0.21.0" \
        "tensorboard==2.21.0" \
        "psycopg2-binary==2.9.13"
# A named volume starts as a copy of the folder it is mounted on: these make
# the volumes writable by the unprivileged user.
RUN useradd --create-home --uid 1000 gdbench \
    && mkdir /runs /mlartifacts \
    && chown gdbench:gdbench /runs /mlartifacts
USER gdbench
WORKDIR /home/gdbench

FROM servers AS gdbench
USER root
RUN pip install "tensorflow[and-cuda]==2.21.*"
WORKDIR /opt/gdbench
COPY pyproject.toml README.md ./
COPY gdbench ./gdbench
RUN pip install .
COPY studies ./studies
USER gdbench
ENV MPLBACKEND=Agg \
    KERAS_BACKEND=tensorflow
