"""Training data: recordings and RVC experiment folders turned into the dataset cache `teach` reads.

    prepare.py    `distill-rvc prepare`: recordings -> sliced, normalised windows with content features and F0
    slicer.py     RVC's silence slicer
    rvc_logs.py   `distill-rvc import-rvc-logs`: an RVC logs/<exp> folder -> the same cache
    dataset.py    the cache on disk: DatasetWriter writes it, Dataset memory-maps it
"""
