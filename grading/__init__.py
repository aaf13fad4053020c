"""Exercises from one source, and grading that student code cannot reach.

The masters ``solutions/NN_*.ipynb`` (otter-grader's assign format, :mod:`grading.masters`)
are the single source of the student notebooks, their public tests and the hidden tests.
``make exercises`` (:mod:`grading.assign`) writes ``exercises/`` without ever overwriting a
student's edits, and Gradescope zips that install the course (:mod:`grading.gradescope`);
``make release`` (:mod:`grading.release`) writes the students' edition, with no solution in it.

``make grade`` has two steps:

1. **record** (:mod:`grading.record`, run inside the bubblewrap sandbox of
   :mod:`grading.sandbox`): execute the student's notebook, call the student's functions on the
   inputs the tests use (:mod:`grading.probes`), and write what they returned as plain data
   (JSON and ``.npz``, :mod:`grading.plain`);
2. **judge** (:mod:`grading.judge`, in the grading process, which never executes student code):
   replay those answers into the master's own test functions and assign the points.

:mod:`grading.submissions` reads the submissions folder and writes ``grades.csv``;
:mod:`grading.batch` runs the two steps over the folder; ``python -m grading`` is the command
line.
"""
