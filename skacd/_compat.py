"""Every private scikit-learn import, and version shims, live here."""

from sklearn.utils._param_validation import (  # noqa: F401
    Interval,
    StrOptions,
    HasMethods,
    validate_params,
)
from sklearn.base import _fit_context  # noqa: F401
from sklearn.utils.validation import validate_data, check_is_fitted  # noqa: F401
from sklearn.utils.validation import _check_feature_names_in  # noqa: F401,E402
from sklearn.utils._response import _get_response_values_binary  # noqa: F401,E402
from sklearn.model_selection._classification_threshold import (  # noqa: F401,E402
    BaseThresholdClassifier,
)
from sklearn.utils import _safe_indexing  # noqa: F401,E402
