"""Speed and quality measurements of lecture_utils (``make bench``; not part of ``make test``).

``loops`` (against bare PyTorch loops), ``attribution`` (against Captum), ``quality``
(teaching figures) and ``notebooks`` (wall times); ``common`` holds the timing, memory
and results-file tools. Run ``python -m benchmarks --help``.
"""
