"""The mini model family: small GPT-NeoX (Pythia-architecture) models trained here, offline, for the scaling study.

Same architecture, same data, same data order, same token budget; only the size changes. The pieces:

* :mod:`~sparse_probing.training.corpus`: the training corpus (English, eight other languages, thirteen code
  languages) built from the probing datasets' own text sources, with every probing text excluded;
* :mod:`~sparse_probing.training.tokenizer`: a byte-level BPE tokenizer trained on it;
* :mod:`~sparse_probing.training.family`: the model sizes (``mini-1`` .. ``mini-4``) and the training recipe;
* :mod:`~sparse_probing.training.trainer`: training with checkpoints, resume and loss logging;
* :mod:`~sparse_probing.training.report`: the training report (markdown + figure) from the logs.

Command line: ``python -m sparse_probing.training {corpus,tokenizer,train,report,bench}``.

Shape suffixes: ``B`` batch, ``P`` position, ``V`` vocabulary, ``D`` model width.
"""
