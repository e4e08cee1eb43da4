"""The InferenceService spec: KServe v1beta1 models, loading, validation, autoscaling knobs."""

from serving.spec.autoscaling import AutoscalingConfig
from serving.spec.durations import parse_duration
from serving.spec.errors import FieldError, SpecError
from serving.spec.loader import load_inference_services, parse_inference_service
from serving.spec.models import (
    API_VERSION,
    FRAMEWORK_KEYS,
    KIND,
    MODEL_CLASS_ANNOTATION,
    Batcher,
    ComponentSpec,
    InferenceService,
    InferenceServiceSpec,
    LoggerSpec,
    ModelFormat,
    ModelSpec,
    ObjectMeta,
    PredictorExtensionSpec,
    PredictorSpec,
    ProtocolVersion,
    ScaleMetric,
)

__all__ = [
    "API_VERSION",
    "FRAMEWORK_KEYS",
    "KIND",
    "MODEL_CLASS_ANNOTATION",
    "AutoscalingConfig",
    "Batcher",
    "ComponentSpec",
    "FieldError",
    "InferenceService",
    "InferenceServiceSpec",
    "LoggerSpec",
    "ModelFormat",
    "ModelSpec",
    "ObjectMeta",
    "PredictorExtensionSpec",
    "PredictorSpec",
    "ProtocolVersion",
    "ScaleMetric",
    "SpecError",
    "load_inference_services",
    "parse_duration",
    "parse_inference_service",
]
