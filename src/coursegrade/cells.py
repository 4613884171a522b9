"""Cell-metadata fixes for autograding: duplicated cells, and one schema check per distinct metadata."""

from __future__ import annotations

import json
import traceback

from nbgrader.nbgraderformat import MetadataValidator, ValidationError
from nbgrader.preprocessors import CheckCellMetadata, DeduplicateIds


class DropDuplicateIds(DeduplicateIds):
    """Like DeduplicateIds (the last copy of a cell keeps its id), removing the metadata entirely."""

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.metadata.get("nbgrader") == {}:
            del cell.metadata["nbgrader"]
        return cell, resources


class _RememberingMetadataValidator(MetadataValidator):
    """nbgrader's cell-metadata validator, skipping cells it already found valid in this process.

    Validity depends only on the cell's type and nbgrader metadata, which are the same in
    nearly every student's copy; nbgrader re-checks its JSON schema for every cell, which
    costs about as much as the rest of a notebook's sanitising.
    """

    valid = set()  # (cell type, nbgrader metadata as JSON) found valid

    def validate_cell(self, cell):
        key = (cell.cell_type, json.dumps(cell.metadata.get("nbgrader"), sort_keys=True))
        if key not in self.valid:
            super().validate_cell(cell)
            self.valid.add(key)


class CheckCellMetadataOnce(CheckCellMetadata):
    """nbgrader's CheckCellMetadata, validating each distinct cell metadata once per process."""

    def preprocess(self, nb, resources):
        try:
            _RememberingMetadataValidator().validate_nb(nb)
        except ValidationError:
            self.log.error(traceback.format_exc())
            raise ValidationError("Notebook failed to validate; the nbgrader metadata may be corrupted.")
        return nb, resources
