using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Supervisor.Cli;
using Supervisor.Native;

namespace Supervisor.Workers;

/// <summary>
/// The DataProtection key ring every worker shares (through the worker-host), so that an auth cookie or
/// antiforgery token issued by one worker is accepted by all, and still after a reload or a restart.
/// </summary>
/// <remarks>
/// Default location: <c>$XDG_STATE_HOME/supervisor/APP/keys</c> (<c>~/.local/state/...</c>): state that must
/// survive restarts, per the XDG base directory spec, and per app, so two apps never share keys by accident.
/// Where that cannot be created (no writable home, as in a hardened container), the ring lives in the run
/// directory: shared by the workers, lost on restart, and a warning says to set --data-protection-dir.
/// </remarks>
internal static class SharedKeyRing
{
    private const UnixFileMode PrivateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    // Keys live 90 days (DataProtection's default); a fresh one is made when the newest has less than
    // this left, long before the workers would each roll their own (they do at 2 days).
    private static readonly TimeSpan KeyLifetime = TimeSpan.FromDays(90);
    private static readonly TimeSpan RenewBefore = TimeSpan.FromDays(14);

    /// <summary>Chooses the directory, creating it with mode 0700 if needed.</summary>
    public static string Prepare(string? requested, string appName, RunDirectory runDirectory, ILogger log)
    {
        if (requested is not null)
        {
            CreatePrivate(requested, "--data-protection-dir");
            return requested;
        }
        var stateHome = Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg
            ? xdg
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "state");
        var preferred = Path.Combine(stateHome, "supervisor", appName, "keys");
        try
        {
            CreatePrivate(preferred, "the default key directory");
            return preferred;
        }
        catch (UsageException exception)
        {
            var fallback = Path.Combine(runDirectory.FullPath, "keys");
            CreatePrivate(fallback, "the key directory");
            log.Warning("DataProtection keys cannot persist ({Reason}); workers share {Fallback} until the supervisor stops. Set --data-protection-dir to a writable directory to keep logins across restarts",
                exception.Message, fallback);
            return fallback;
        }
    }

    /// <summary>Makes sure the ring holds a key that stays valid for a while, before any worker starts.</summary>
    public static void EnsureCurrentKey(string directory, ILogger log)
    {
        var services = new ServiceCollection();
        services.AddLogging();
        services.AddDataProtection().PersistKeysToFileSystem(new DirectoryInfo(directory));
        using var provider = services.BuildServiceProvider();
        var keyManager = provider.GetRequiredService<IKeyManager>();
        var now = DateTimeOffset.UtcNow;
        var usable = keyManager.GetAllKeys().Any(key => !key.IsRevoked && key.ActivationDate <= now && key.ExpirationDate > now + RenewBefore);
        if (!usable)
        {
            var key = keyManager.CreateNewKey(now, now + KeyLifetime);
            log.Information("DataProtection: created key {KeyId} in {Directory}, valid until {Expiration:yyyy-MM-dd}", key.KeyId, directory, key.ExpirationDate);
        }
    }

    private static void CreatePrivate(string path, string what)
    {
        if (Libc.GetPathStatus(path) is { } existing)
        {
            if (!existing.IsDirectory || existing.OwnerId != Libc.EffectiveUserId)
            {
                throw new UsageException($"{what} '{path}' is not a directory of the supervisor's user; give a directory you own");
            }
            if ((existing.Permissions & (UnixFileMode)0b000_111_111) != 0)
            {
                throw new UsageException($"{what} '{path}' can be read by others (mode {Convert.ToString((int)existing.Permissions, 8)}); the keys in it sign your users' cookies: chmod 700 '{path}'");
            }
            return;
        }
        try
        {
            Directory.CreateDirectory(path, PrivateMode);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"{what} '{path}' cannot be created ({exception.Message}); give a writable directory with --data-protection-dir");
        }
    }
}
