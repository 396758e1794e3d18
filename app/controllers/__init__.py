"""Actions: what happens when the user does something. They run services on worker threads through the
:class:`~app.workers.TaskRunner` and write the results into the state; widgets only call them."""

from app.controllers.app_controller import AppContext, AppController

__all__ = ["AppContext", "AppController"]
