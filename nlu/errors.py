from __future__ import annotations

from kit.errors import InvalidInput, ShopTalkError


class TrainingDataError(InvalidInput):
    """A training data file is not valid Rasa NLU YAML; the detail names file, line and problem."""

    code = "nlu_training_data_invalid"
    title = "NLU training data is invalid"

    def __init__(self, problem: str, *, source: str, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {problem}", source=source, line=line, problem=problem)
        self.source = source
        self.line = line
        self.problem = problem


class NluModelMissing(ShopTalkError):
    code = "nlu_model_missing"
    status = 503
    title = "No NLU model is trained yet"


class NluModelInvalid(ShopTalkError):
    code = "nlu_model_invalid"
    status = 500
    title = "The NLU model artifact cannot be loaded"
