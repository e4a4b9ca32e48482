"""The autograder's machinery (``python -m slt_course_utils.grade`` is the entry point).

- ``sandbox``   the student process: bubblewrap, an unprivileged uid, rlimits, a read-only package copy
- ``runner``    what runs inside it: the student's cells, then calls of the student's functions
- ``checking``  the canonical checks, run in the grader on the values the student process returns
- ``wire``      what crosses between them: pickles one way, plain-data JSON the other
"""
