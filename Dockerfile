# One image for every Outbound process. The compose service's command picks
# the process: the API (uvicorn), the worker (python -m worker), the schema
# migration (python -m store.migrate) or an admin command (python -m cli.admin).
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# The project is installed the way the Makefile's install target installs it,
# from this pyproject.toml, without the editable mode and the test extras.
# TODO(deploy): the repository has no lock file, so each build resolves the
# newest versions that pyproject.toml allows, and two builds can differ.
WORKDIR /src
COPY pyproject.toml README.md config.py worker.py ./
COPY activities ./activities
COPY api ./api
COPY cli ./cli
COPY contacts ./contacts
COPY rules ./rules
COPY store ./store
COPY telephony ./telephony
COPY workflows ./workflows
RUN python -m pip install --upgrade pip \
    && python -m pip install .

# The processes run from an empty directory so that they import the installed
# package, and as a user without a login or write access to the code.
RUN useradd --system --uid 10001 --user-group --home-dir /app --create-home outbound
WORKDIR /app
USER outbound

EXPOSE 8000
CMD ["uvicorn", "api.app:app_from_environment", "--factory", "--host", "0.0.0.0", "--port", "8000"]
