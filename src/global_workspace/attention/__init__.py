"""Attention over a frozen workspace: a key–query selector, input corruption, the robustness experiment."""
