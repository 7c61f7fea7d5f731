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
/// Never a relative path: a relative XDG_STATE_HOME or HOME gives no default. Where there is no default
/// or it cannot be created (no writable home, as in a hardened container), the ring lives in the run
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
        var (directory, problem) = Choose(requested, appName);
        if (directory is not null)
        {
            return directory;
        }
        var fallback = runDirectory.TransientKeyDirectory;
        CreatePrivate(fallback, "the key directory");
        log.Warning("{Problem}; workers share {Fallback} until the supervisor stops", NotPersistent(problem!), fallback);
        return fallback;
    }

    /// <summary>
    /// What a start would find, for --check-config: throws when --data-protection-dir cannot be used (after
    /// creating it as a start would), and returns the warning a start would log when the default cannot.
    /// </summary>
    public static string? Check(string? requested, string appName) =>
        Choose(requested, appName).Problem is { } problem ? NotPersistent(problem) : null;

    // The asked-for directory or a UsageException; else the default, or why there is none.
    private static (string? Directory, string? Problem) Choose(string? requested, string appName)
    {
        if (requested is not null)
        {
            CreatePrivate(requested, "--data-protection-dir");
            return (requested, null);
        }
        if (DefaultDirectory(appName) is not { } preferred)
        {
            var home = Environment.GetEnvironmentVariable("HOME") is { } value ? $"HOME is '{value}'" : "HOME is not set";
            return (null, $"there is no absolute home directory to keep them in ({home}); set --data-protection-dir");
        }
        try
        {
            CreatePrivate(preferred, "the default key directory");
            return (preferred, null);
        }
        catch (UsageException exception)
        {
            return (null, exception.Message);
        }
    }

    // XDG base directory spec: a relative XDG_STATE_HOME is invalid and ignored. A relative or empty home
    // (HOME=. in some containers) would put the keys wherever the supervisor happened to start: no default.
    private static string? DefaultDirectory(string appName)
    {
        if (Environment.GetEnvironmentVariable("XDG_STATE_HOME") is { Length: > 0 } xdg && Path.IsPathFullyQualified(xdg))
        {
            return Path.Combine(xdg, "supervisor", appName, "keys");
        }
        // HOME, or the user's entry in the password database; verifying it would answer "" for a home the
        // user cannot read, and the reason would be lost.
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile, Environment.SpecialFolderOption.DoNotVerify);
        return Path.IsPathFullyQualified(home) ? Path.Combine(home, ".local", "state", "supervisor", appName, "keys") : null;
    }

    private static string NotPersistent(string problem) =>
        $"DataProtection keys will not persist across restarts, so logins and antiforgery tokens will not either: {problem}";

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
            throw new UsageException($"{what} '{path}' cannot be created ({exception.Message.TrimEnd('.')}); give a writable directory with --data-protection-dir");
        }
    }
}
