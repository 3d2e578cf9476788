"""The bundled QLoRA/GaLore trainer: gated by certification, sized for the GPU (`envdoctor train`).

Importing this package is cheap; torch and the training stack are imported only when a run starts.
"""

from __future__ import annotations
