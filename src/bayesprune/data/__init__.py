"""The datasets, fetched and verified; the study's augmentation; the splits a run trains, validates and is scored on."""
