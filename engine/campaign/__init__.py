"""Recorder campaigns (torch-free): the campaign folder, chips and audio windows for training."""

from engine.campaign.table import (Campaign, CampaignRecording, Site, is_campaign, load_campaign,
                                   write_campaign)

__all__ = ["Campaign", "CampaignRecording", "Site", "is_campaign", "load_campaign", "write_campaign"]
