using System.Security.Cryptography.X509Certificates;
using Supervisor.Configuration;
using Supervisor.Proxy;
using Supervisor.Workers;

namespace Supervisor.Cli;

/// <summary>
/// The checks beyond reading the settings that need this machine: the dotnet host and worker-host the
/// workers need, and the TLS certificate. Run by --check-config and at every start, before anything starts;
/// what they load is what the run then uses.
/// </summary>
internal static class StartupChecks
{
    public static CheckedStartup Run(SupervisorOptions options)
    {
        var runtime = WorkerRuntime.Locate(options.App, Environment.GetEnvironmentVariable);
        var certificate = options.ServesHttps ? TlsCertificate.Load(options.CertFile!, options.KeyFile!) : null;
        return new CheckedStartup(runtime, certificate);
    }
}

/// <summary>What the start-up checks found: how to launch workers, and the certificate to serve HTTPS with (or none).</summary>
internal sealed record CheckedStartup(WorkerRuntime WorkerRuntime, X509Certificate2? Certificate) : IDisposable
{
    public void Dispose() => Certificate?.Dispose();
}
