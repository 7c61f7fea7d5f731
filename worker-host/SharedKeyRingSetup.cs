using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Supervisor.WorkerHost;

/// <summary>
/// Gives the app's DataProtection the supervisor's shared key ring, so a cookie or token protected by one
/// worker opens in every other, and after reloads and restarts. Runs after the app's own configuration
/// and only fills in what is missing: an app that chose its own key storage keeps it.
/// </summary>
internal sealed class SharedKeyRingSetup(string keyDirectory, string applicationName, ILoggerFactory loggerFactory)
    : IPostConfigureOptions<KeyManagementOptions>, IPostConfigureOptions<DataProtectionOptions>
{
    public void PostConfigure(string? name, KeyManagementOptions options)
    {
        if (options.XmlRepository is not null || options.XmlEncryptor is not null)
        {
            HookLog.Note("DataProtection: the app configured its own key storage; keeping it");
            return;
        }
        options.XmlRepository = new FileSystemXmlRepository(new DirectoryInfo(keyDirectory), loggerFactory);
        HookLog.Note($"DataProtection: using the supervisor's shared key ring in {keyDirectory}");
    }

    // Left alone, the discriminator is the content root path, which changes when a deploy moves the app
    // to a new release folder: payloads from before the deploy would no longer open.
    public void PostConfigure(string? name, DataProtectionOptions options) =>
        options.ApplicationDiscriminator ??= applicationName;
}
