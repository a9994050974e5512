"""The model: scenario files validated into typed objects (``config``), parameter paths
(``paths``), size limits (``limits``), alliance-portfolio similarity math (``similarity``) and the
arrays the kernels read (``compile``).  A new mechanism's key and its neutral default go here;
its arithmetic goes into ``kernels/`` and its oracle into :mod:`engine.oracles`.
"""
