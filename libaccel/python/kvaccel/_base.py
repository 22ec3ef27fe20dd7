# SPDX-License-Identifier: MIT
"""The lifetime every kvaccel object shares: close(), a context manager,
__del__ as a last resort, ValueError on use after close."""


class Handle:
    """An object owning one C handle (self._hd). Subclasses set _what (the
    name in messages) and implement _release(handle)."""

    _what = "object"
    _hd = None

    def _release(self, hd):
        raise NotImplementedError

    def close(self):
        """Release the C object (idempotent)."""
        hd, self._hd = self._hd, None
        if hd:
            self._release(hd)

    def __enter__(self):
        self._h()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    @property
    def closed(self):
        return not self._hd

    def _h(self):
        hd = self._hd
        if not hd:
            raise ValueError("operation on a closed %s" % self._what)
        return hd

    def __repr__(self):
        return "<kvaccel.%s%s>" % (type(self).__name__, " closed" if self.closed else "")
