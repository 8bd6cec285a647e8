"""What the offline GPU machine's image holds, and the wheels the kit carries for what it lacks.

The image has no network and no MLflow (its Python, torch and versions, and when its package
list was read: docs/offline-gpu.md). `IMAGE_PACKAGES` is that package list (`kit run`
prints what the machine has, to check it against). `CARRIED` is the
smallest set of distributions that, added to those, runs every stage of a study against a
local sqlite store: found by running the study with only the image's packages and adding what
failed to import, and kept true by `tests/test_kit_continuation.py`, which does the same
here.
"""

from __future__ import annotations

IMAGE_PYTHON = "3.12"

IMAGE_PACKAGES = frozenset("""
absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch
build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage
cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn
einops equinox etils execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec
gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize hypothesis idna imageio
iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib
kiwisolver lazy-loader lightning lightning-utilities linear-operator lineax llvmlite lxml
markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes mpi4py mpmath msgpack
multidict multipledispatch mypy-extensions nanobind narwhals networkx ninja numba numba-cuda
numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc nvidia-cuda-runtime
nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver nvidia-cusparse
nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink nvidia-nvshmem-cu13
nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax opt-einsum
opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip pluggy
portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments
pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock
pytest-timeout pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich
sacrebleu safetensors scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece
sentence-transformers setuptools shellingham simplejson six sortedcontainers statsmodels sympy
tabulate tensorboard tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm
tokenizers toolz torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm
transformers treescope triton typer typing-extensions typing-inspect urllib3 uvloop
wadler-lindig werkzeug wheel wrapt xarray xxhash yarl zipp
""".split())

# The distributions the image lacks that a study needs (names as on the package index). Not
# carried, though the `mlflow` package names them: `mlflow` itself (the same files as
# mlflow-skinny plus the web UI; `serving.packaging` reads the version
# from mlflow-skinny then), `mlflow-tracing` (a subset of mlflow-skinny), flask, gunicorn,
# graphene, docker, boto3 and the other server or cloud packages, and gitpython (MLflow then
# only warns that it cannot tag the git commit; the project tags it itself).
CARRIED = (
    "mlflow-skinny",
    "sqlalchemy", "alembic", "mako",  # the sqlite store and its migrations
    "cryptography", "cffi",  # the model registry's store imports cryptography
    "pydantic", "pydantic-core", "typing-inspection", "annotated-types",
    "opentelemetry-api", "opentelemetry-sdk", "opentelemetry-proto",
    "opentelemetry-semantic-conventions",
    "fastapi", "starlette", "databricks-sdk", "importlib-metadata", "cachetools", "sqlparse",
)
