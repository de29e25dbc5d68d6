"""The fault matrix: Ferry's safety promise under every fault we can inject on a real socket.

"The exact bytes are at the destination, or nothing is, and the manifest says which." Each cell
runs the real ``ferry cp`` CLI as a subprocess, configured from the environment only, against a
real local store (SeaweedFS, the GCS emulator, the HTTP range server) through a FaultProxy.

- matrix.py: the rows (Operation x store) and columns (Fault); which cells are n/a, and why
- operations.py: Download, Upload, ServerSideCopy, CrossStoreCopy, BulkDownload, BulkUpload (a new
  row: one more Operation, one line in matrix.ROWS)
- faults_*.py: the columns; promise.py: the checks every cell makes; cell.py: a cell's context
- conftest.py: the table, printed after the run; ``python -m tests.faults`` (``make faults``)
"""
