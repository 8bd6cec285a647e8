"""Exceptions with messages that tell the user what to do next.

The CLI turns any `PneumoniaAugError` into a one-line message and exit code 2, without a
traceback: these are user errors, not bugs.
"""


class PneumoniaAugError(Exception):
    """Base class: a problem the user can fix."""


class SettingError(PneumoniaAugError, ValueError):
    """A setting name that does not follow `{Original|DCGAN|CGAN}-{r}-{g}`."""


class DataLayoutError(PneumoniaAugError):
    """A data folder that is not in the Kermany `{train,val,test}/{NORMAL,PNEUMONIA}` layout."""


class DataMissingError(PneumoniaAugError):
    """No data where the user pointed us."""


class DownloadError(PneumoniaAugError):
    """A download that failed or does not match its checksum."""


class SyntheticDataMissingError(PneumoniaAugError):
    """A GAN setting for which no generated images can be found."""


class ModelVersionError(PneumoniaAugError):
    """A registered model's alias that no version holds (e.g. no `@champion` yet)."""


class TrackingError(PneumoniaAugError):
    """The tracking server or artifact store cannot be reached or refuses us."""


class TrackingOutageError(TrackingError):
    """The tracking server stayed unreachable longer than the outage limit: the run stopped,
    its checkpoint and unsent metrics kept for `--resume`."""


class TrainingDivergedError(PneumoniaAugError):
    """Losses became NaN or infinite: the run stops FAILED, with what it logged kept."""


class KitError(PneumoniaAugError):
    """The kit for an offline GPU machine cannot be built or used as asked."""
