"""ecglab: deep-learning ECG arrhythmia classification."""

__version__ = "0.1.0"
