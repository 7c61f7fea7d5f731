using System.Security.Cryptography.X509Certificates;
using Supervisor.Configuration;
using Supervisor.Logging;
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

    /// <summary>
    /// What --check-config does beyond <see cref="Run"/>: the first steps of a start, done and undone. Each
    /// public address is bound and released, each log file opened (and removed again if the check made it),
    /// and the key directory checked (created, mode 0700, as a start would). Throws what the start would
    /// have failed with; returns the warnings it would have logged.
    /// </summary>
    public static async Task<IReadOnlyList<string>> RehearseAsync(SupervisorOptions options)
    {
        ListenCheck.Run([.. options.Binds, .. options.AdminBind is { } admin ? [admin] : Array.Empty<BindAddress>()]);
        string[] logFiles = [.. new[] { options.ErrorLogFile, options.AccessLogFile }.OfType<string>().Where(file => file != "-" && !File.Exists(file)).Distinct()];
        try
        {
            await using var errorLog = ErrorLog.Open(options);
            await using var accessLog = AccessLog.Open(options, errorLog);
        }
        finally
        {
            foreach (var made in logFiles.Where(File.Exists))
            {
                File.Delete(made);
            }
        }
        return SharedKeyRing.Check(options.DataProtectionDirectory, options.App.Name) is { } warning ? [warning] : [];
    }
}

/// <summary>What the start-up checks found: how to launch workers, and the certificate to serve HTTPS with (or none).</summary>
internal sealed record CheckedStartup(WorkerRuntime WorkerRuntime, X509Certificate2? Certificate) : IDisposable
{
    public void Dispose() => Certificate?.Dispose();
}
