using Supervisor.Configuration;
using Supervisor.Proxy;
using Supervisor.Workers;

namespace Supervisor.Cli;

/// <summary>
/// The checks beyond reading the settings that need this machine: the dotnet host and worker-host the
/// workers need, and the TLS certificate. Run by --check-config and at every start, before anything starts.
/// </summary>
internal static class StartupChecks
{
    public static WorkerRuntime Run(SupervisorOptions options)
    {
        var runtime = WorkerRuntime.Locate(options.App, Environment.GetEnvironmentVariable);
        if (options.ServesHttps)
        {
            TlsCertificate.Load(options.CertFile!, options.KeyFile!).Dispose();
        }
        return runtime;
    }
}
