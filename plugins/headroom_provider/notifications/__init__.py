"""headroom's alert channels and notifier (provider hooks are imported only when a notice is sent)."""
