"""The lab: train or resume a run end to end, compare models, reproduce a table over seeds."""
