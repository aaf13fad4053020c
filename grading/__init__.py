"""Exercises from one source, and grading that student code cannot reach.

The masters ``solutions/NN_*.ipynb`` (otter-grader's assign format) are the single source of
the student notebooks, their public tests and the hidden tests. Grading has two steps:

1. **record** (:mod:`grading.record`, run inside the bubblewrap sandbox of
   :mod:`grading.sandbox`): execute the student's notebook, call the student's functions on the
   inputs the tests use (:mod:`grading.probes`), and write what they returned as plain data
   (JSON and ``.npz``, :mod:`grading.plain`);
2. **judge** (:mod:`grading.judge`, in the grading process, which never executes student code):
   replay those answers into the master's own test functions and assign the points.

:mod:`grading.batch` grades a folder of submissions into ``grades.csv``; ``python -m grading``
is the command line (``make exercises``, ``make grade``).
"""
