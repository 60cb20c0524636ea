"""Every private scikit-learn import, and version shims, live here."""

from sklearn.base import _fit_context  # noqa: F401
from sklearn.model_selection._classification_threshold import (  # noqa: F401
    BaseThresholdClassifier,
)
from sklearn.utils import _safe_indexing  # noqa: F401
from sklearn.utils._param_validation import (  # noqa: F401
    HasMethods,
    Interval,
    StrOptions,
    validate_params,
)
from sklearn.utils._response import _get_response_values_binary  # noqa: F401
from sklearn.utils.validation import (  # noqa: F401
    _check_feature_names_in,
    check_is_fitted,
    validate_data,
)
