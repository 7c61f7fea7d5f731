using Supervisor.Configuration;

namespace Supervisor.Logging;

/// <summary>The supervisor's two logs, for what is done to both at once: reopen (SIGUSR1, SIGHUP) and reconfigure (reload).</summary>
internal sealed class Logs(ErrorLog errorLog, AccessLog accessLog)
{
    public void Reopen()
    {
        errorLog.Reopen();
        accessLog.Reopen();
    }

    public void Apply(SupervisorOptions options)
    {
        errorLog.Apply(options);
        accessLog.Reconfigure(options);
    }
}
