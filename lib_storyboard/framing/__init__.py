"""Which shot a real image is (close-up, medium, full, no person), from mediapipe body and face landmarks."""
from .classify import ShotGuess, classify_image

__all__ = ["ShotGuess", "classify_image"]
